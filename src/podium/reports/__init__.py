"""What runs did, as figures, text and one static HTML page."""
