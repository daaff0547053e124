"""Quests (training files): formats, content checks, the queue on disk, the inbox
watcher, the keeper inside the engine, and the quest commands."""
