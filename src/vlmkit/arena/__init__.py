"""The arena: two anonymous models answer the same image and prompt side by side, a person votes, and
votes become Bradley-Terry ratings with intervals, as in Chatbot Arena / Vision Arena.

``battles`` reads votes (the arena's SQLite database or FastChat-style JSONL); ``ratings`` fits them;
``votes`` stores them; ``state`` and ``app`` are the server (``vlmkit arena --models A,B,C``), built on
``vlmkit.serving``'s chat workers, limits and image decoding; ``tables`` prints the leaderboard.
"""
