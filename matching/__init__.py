"""The alliance graph and everything computed on it: pure computation, no I/O."""

from matching.errors import MatchingError, UnknownOrganisation
from matching.graph import AllianceGraph
from matching.proximity import personalized_pagerank
from matching.ranking import MODEL_VERSION, WEIGHTS, Suggestion, suggest
from matching.reasons import Reason

__all__ = [
    "MODEL_VERSION",
    "WEIGHTS",
    "AllianceGraph",
    "MatchingError",
    "Reason",
    "Suggestion",
    "UnknownOrganisation",
    "personalized_pagerank",
    "suggest",
]
