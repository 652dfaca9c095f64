from selfimprove.strategies.voting import majority_vote


def test_plain_majority():
    vote = majority_vote(["3", "5", "3", "4"])
    assert vote.answer == "3"
    assert vote.counts == {"3": 2, "5": 1, "4": 1}
    assert vote.share == 0.5


def test_tie_goes_to_the_answer_seen_first():
    assert majority_vote(["5", "3", "3", "5"]).answer == "5"
    assert majority_vote(["3", "5", "5", "3"]).answer == "3"


def test_extraction_failures_cast_no_vote():
    vote = majority_vote([None, None, None, "2", None])
    assert vote.answer == "2"
    assert vote.counts == {"2": 1}
    assert vote.share == 0.2  # confidence counts failures in the denominator


def test_no_votes_at_all():
    vote = majority_vote([None, None])
    assert vote.answer is None and vote.counts == {} and vote.share == 0.0
