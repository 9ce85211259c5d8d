"""The project's own English stop-word list (no download needed).

Negations and intensity words that flip or scale sentiment are deliberately absent, and
`NEGATIONS` is checked again at removal time so that no list edit can drop them.
"""

NEGATIONS: frozenset[str] = frozenset(
    {
        "no", "not", "nor", "never", "none", "nobody", "nothing", "nowhere", "neither",
        "n't", "cannot", "without", "aint", "ain't", "dont", "don't", "doesn't", "didn't",
        "isn't", "wasn't", "aren't", "weren't", "won't", "wouldn't", "can't", "couldn't",
        "shouldn't", "hasn't", "haven't", "hadn't", "mustn't", "needn't", "cant", "wont",
        "didnt", "doesnt", "isnt", "wasnt", "couldnt", "shouldnt", "wouldnt",
    }
)  # fmt: skip

STOPWORDS: frozenset[str] = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "if", "then", "so", "than", "as", "of", "at",
        "by", "for", "with", "about", "into", "through", "during", "before", "after", "to",
        "from", "in", "on", "over", "under", "again", "further", "once", "here", "there",
        "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most",
        "other", "some", "such", "own", "same", "just", "i", "me", "my", "myself", "we",
        "our", "ours", "ourselves", "you", "your", "yours", "yourself", "yourselves", "he",
        "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself",
        "they", "them", "their", "theirs", "themselves", "what", "which", "who", "whom",
        "this", "that", "these", "those", "am", "is", "are", "was", "were", "be", "been",
        "being", "have", "has", "had", "having", "do", "does", "did", "doing", "will",
        "would", "shall", "should", "can", "could", "may", "might", "must", "i'm", "i've",
        "i'll", "i'd", "you're", "you've", "you'll", "it's", "he's", "she's", "we're",
        "they're", "that's", "there's", "'s", "'re", "'ve", "'ll", "'d", "'m", "up", "down",
        "out", "off", "also", "too", "s", "t", "d", "ll", "m", "re", "ve", "o", "y",
    }
) - NEGATIONS  # fmt: skip
