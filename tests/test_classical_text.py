"""The classical text features (TF-IDF of words and of character n-grams) that the baselines and the automatic
search's heads read: what each part catches, their scale, and heads saved before the character part."""
import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from core.engine.classify import baselines
from core.models.classical import TOKEN, TfidfFeatures, classical_from_dict

TRAIN = ["could not open the file", "connection refused by the server", "Datei konnte nicht geöffnet werden",
         "Verbindung vom Server abgelehnt", "disk is full", "Festplatte ist voll"]


def test_rows_are_of_unit_length_and_both_parts_are_there():
    features = TfidfFeatures().fit(TRAIN)
    x = features.transform(TRAIN + ["nothing known here: zzzz"])
    assert x.shape == (7, features.dim) and x.dtype == torch.float32
    assert torch.allclose(x[:6].norm(dim=1), torch.ones(6), atol=1e-5)
    assert [p.analyzer for p in features.parts] == ["word", "char_wb"]
    words = len(features.parts[0].vocabulary_)
    assert words < features.dim  # the character part adds its own columns after the words'


def test_characters_reach_words_the_training_rows_never_had():
    features = TfidfFeatures().fit(TRAIN)
    words = len(features.parts[0].vocabulary_)
    x = features.transform(["connections refusing"])  # neither word is in the training rows
    assert float(x[0, :words].abs().sum()) == 0.0
    assert float(x[0, words:].abs().sum()) > 0.0


def test_a_saved_head_round_trips_and_an_older_words_only_head_reads_as_it_was_trained():
    features = TfidfFeatures().fit(TRAIN)
    again = classical_from_dict(features.to_dict())
    assert torch.equal(again.transform(TRAIN), features.transform(TRAIN))

    # a head saved before the character part: terms and idf of the words at the top of its state
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=TOKEN.pattern).fit(TRAIN)
    old = {"kind": "tfidf", "max_features": 20000, "terms": sorted(words.vocabulary_, key=words.vocabulary_.get),
           "idf": [float(v) for v in words.idf_]}
    read = classical_from_dict(old)
    assert read.dim == len(words.vocabulary_)
    np.testing.assert_allclose(read.transform(TRAIN).numpy(), words.transform(TRAIN).toarray(), atol=1e-6)

    with pytest.raises(ValueError, match="newer studio"):
        classical_from_dict({"kind": "tfidf", "parts": [{"analyzer": "phonemes", "terms": ["a"], "idf": [1.0]}]})


def test_symbols_only_texts_keep_their_characters_and_empty_texts_give_one_zero_column():
    symbols = TfidfFeatures().fit(["!!!", "???", "!?!"])
    assert [p.analyzer for p in symbols.parts] == ["char_wb"]  # no word at all: the character part alone
    x = symbols.transform(["!", "?"])
    assert not torch.equal(x[0], x[1]) and torch.allclose(x.norm(dim=1), torch.ones(2), atol=1e-5)
    empty = TfidfFeatures().fit(["", " "])
    assert empty.dim == 1 and empty.transform(["anything"]).shape == (1, 1)


def test_the_baseline_tells_languages_apart_by_their_spelling():
    """Words alone know only the words they saw; the baseline's character part scores a message in German or
    French from its spelling even when it shares no word with the training rows."""
    german = ["Datei nicht gefunden", "Verbindung wurde abgelehnt", "Zugriff verweigert", "Speicher ist voll",
              "Ungültige Eingabe", "Konfiguration wird geladen"]
    french = ["fichier introuvable", "connexion refusée", "accès refusé", "mémoire saturée", "entrée invalide",
              "chargement de la configuration"]
    probs = baselines.tfidf_logreg(german + french, [0] * 6 + [1] * 6,
                                   ["Verzeichnis wurde nicht gefunden", "répertoire introuvable"], 2)
    assert probs.argmax(axis=1).tolist() == [0, 1]
