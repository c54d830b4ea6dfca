"""The Bounce House Rentals demo."""
