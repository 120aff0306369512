"""Silence is judged only over time analytics could hear (pure logic, a clock of our own)."""

from analytics.hearing import Hearing


def test_silence_is_judged_from_the_start_but_not_while_deaf_nor_until_settled_again() -> None:
    hearing = Hearing(settle_s=300)
    hearing.heard_again(0)  # the first connection: the stored readings were caught up
    assert hearing.may_judge(1, connected=True)
    assert not hearing.may_judge(2, connected=False)  # the broker is away
    assert not hearing.may_judge(600, connected=False)
    hearing.heard_again(610)  # back: the backlog of the outage is arriving
    assert not hearing.may_judge(611, connected=True)
    assert not hearing.may_judge(909, connected=True)
    assert hearing.may_judge(910, connected=True)
    hearing.heard_again(1000)  # a resubscription without any loss changes nothing
    assert hearing.may_judge(1001, connected=True)
