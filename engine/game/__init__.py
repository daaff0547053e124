"""The rules of the game: XP, levels, ATK/DEF/ACC, gold."""
