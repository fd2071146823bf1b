"""A hand-built two-session conversation for the dialogue env tests (facts invented)."""

from memgym.data.dialogue import Conversation, DialogueQuestion, DialogueSession, DialogueTurn


def tiny_conversation(conversation_id: str = "tiny") -> Conversation:
    """Ana and Ben over two sessions; three questions linked to turns D1:1, D2:1 and D2:2."""
    s1 = DialogueSession(1, "1:00 pm on 8 May, 2023", (
        DialogueTurn("D1:1", "Ana", "I just moved to Lisbon.", 1),
        DialogueTurn("D1:2", "Ben", "I adopted a cat called Miso.", 1),
    ), "session_1")
    s2 = DialogueSession(2, "2:00 pm on 9 June, 2023", (
        DialogueTurn("D2:1", "Ana", "I started learning the violin.", 2),
        DialogueTurn("D2:2", "Ben", "Miso now sleeps on my violin case.", 2),
    ), "session_2")
    questions = (
        DialogueQuestion("tiny:q0", "Where did Ana move?", ("Lisbon",), "single-hop",
                         evidence=("D1:1",), evidence_sessions=("session_1",),
                         answer_after="D1:1"),
        DialogueQuestion("tiny:q1", "What is Ana learning?", ("the violin",), "single-hop",
                         evidence=("D2:1",), evidence_sessions=("session_2",),
                         answer_after="D2:1"),
        DialogueQuestion("tiny:q2", "Where does Ben's cat sleep?", ("on the violin case",),
                         "multi-hop", evidence=("D1:2", "D2:2"),
                         evidence_sessions=("session_1", "session_2"), answer_after="D2:2"),
    )
    return Conversation(conversation_id, ("Ana", "Ben"), (s1, s2), questions, "test")
