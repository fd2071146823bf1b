"""Shared data of the env tests: a hand-built two-session conversation (facts invented), and
the fixture kwargs of the registered ids whose data memgym cannot ship."""

from pathlib import Path

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


FIXTURES = Path(__file__).parents[1] / "fixtures"
DATA_KWARGS = {  # ids whose data memgym cannot ship: the fixtures in the datasets' schemas
    "MemoryR1-LoCoMo-v0": {"data_path": str(FIXTURES / "locomo_mini.json")},
    "RMM-LoCoMo-v0": {"data_path": str(FIXTURES / "locomo_mini.json")},
    "RMM-LongMemEval-v0": {"data_path": str(FIXTURES / "longmemeval_mini.json")},
    "MemoryR1-LongMemEval-v0": {"data_path": str(FIXTURES / "longmemeval_mini.json")},
    "MemoryBank-MemoryAgentBench-v0": {"data_path": str(FIXTURES / "memoryagentbench"),
                                       "competency": "Conflict_Resolution"},
}
"""gym.make kwargs per registered id that needs data (the others run offline without any)."""
