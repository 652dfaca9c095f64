"""Answer extraction and graders: numbers, LaTeX (math-verify), multiple choice, and programs, run in the
sandbox and judged from outside their process."""
