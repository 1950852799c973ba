// Word lists for the RULER-style tasks: keys are "adjective-noun" pairs as RULER makes them from
// wonderwords' lists; the common-words task draws from nouns, adjectives and verbs. Ours are short
// lists of plain English words (RULER's are wonderwords' nounlist/adjectivelist/verblist).
#pragma once

#include <string>
#include <vector>

namespace lct {

const std::vector<std::string>& ruler_adjectives();
const std::vector<std::string>& ruler_nouns();
const std::vector<std::string>& ruler_verbs();

}  // namespace lct
