"""The domain: the six case types, their guards and deadlines, and the service the edges call."""
