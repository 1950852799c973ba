// --help text and docs/deck.md, both generated from the deck schema.
#pragma once

#include <string>

namespace lct {

std::string usage_text();
std::string help_text();      // usage + every key with type, default and meaning
std::string deck_markdown();  // docs/deck.md

}  // namespace lct
