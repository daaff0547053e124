"""`realm bench`: training speed, eval speed, quest intake, and the game's cost."""
