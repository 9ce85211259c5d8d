"""Replay a data set into the posts topic, or send one post by hand."""
