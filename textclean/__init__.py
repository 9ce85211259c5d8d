"""Text cleaning shared by training and serving; torch-free by design."""

from textclean.clean import clean_text, clean_tokens, text_cleaner
from textclean.config import NUMBER_TOKEN, URL_TOKEN, USER_TOKEN, CleaningConfig
from textclean.errors import TextCleanError

__all__ = [
    "NUMBER_TOKEN",
    "URL_TOKEN",
    "USER_TOKEN",
    "CleaningConfig",
    "TextCleanError",
    "clean_text",
    "clean_tokens",
    "text_cleaner",
]
