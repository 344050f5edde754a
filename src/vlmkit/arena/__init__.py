"""The arena: two anonymous models answer the same image and prompt side by side, a person votes, and
votes become Bradley-Terry ratings with intervals (``ratings``), as in Chatbot Arena / Vision Arena.

``battles`` reads votes (the arena's SQLite database or FastChat-style JSONL); ``ratings`` fits them.
"""
