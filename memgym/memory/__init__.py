"""Memory substrates owned by environments: the overwrite slot (MemAgent, MEM1) and the memory
bank with its operations and retrieval (Memory-R1, RMM)."""

from memgym.memory.bank import ACTION_FORMATS, MemoryBank, MemoryEntry, WriteContext
from memgym.memory.operations import (
    OPERATION_EVENTS,
    OPERATIONS,
    MemoryOperation,
    OperationResult,
    OperationSpec,
    count_operations,
    operation_events,
    parse_memory_operations,
    parse_rmm_operations,
    register_operation,
    unregister_operation,
)
from memgym.memory.retrieval import (
    RETRIEVERS,
    BM25Retriever,
    DenseRetriever,
    Retriever,
    SentenceEncoder,
    load_sentence_encoder,
    make_retriever,
)
from memgym.memory.slot import NO_MEMORY, OverwriteSlot, SlotWrite
from memgym.memory.view import (
    MEMORY_STYLES,
    ShownMemory,
    format_memories,
    observed_memories,
    shown_memories,
)

__all__ = [
    "ACTION_FORMATS",
    "MEMORY_STYLES",
    "NO_MEMORY",
    "OPERATIONS",
    "OPERATION_EVENTS",
    "RETRIEVERS",
    "BM25Retriever",
    "DenseRetriever",
    "MemoryBank",
    "MemoryEntry",
    "MemoryOperation",
    "OperationResult",
    "OperationSpec",
    "OverwriteSlot",
    "Retriever",
    "SentenceEncoder",
    "ShownMemory",
    "SlotWrite",
    "WriteContext",
    "count_operations",
    "format_memories",
    "load_sentence_encoder",
    "make_retriever",
    "observed_memories",
    "operation_events",
    "parse_memory_operations",
    "parse_rmm_operations",
    "register_operation",
    "shown_memories",
    "unregister_operation",
]
