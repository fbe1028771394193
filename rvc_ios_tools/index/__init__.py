"""The retrieval index: faiss IndexIVFFlat files read without faiss, exported, searched as faiss searches."""
