"""Corpus folders: layout, pose readers, validation and importers."""

from signattention_core.corpus.layout import Corpus, CorpusError, Problem, Sample, write_corpus

__all__ = ["Corpus", "CorpusError", "Problem", "Sample", "write_corpus"]
