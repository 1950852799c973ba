// A stage's deck as it will run: stage overrides, then the architecture of model.init_from (an HF
// directory's config.json), then derived values (deck/config.h resolve_deck).
#pragma once

#include "deck/deck.h"

namespace lct {

// Takes model.* and rope.* from <init_from>/config.json where the deck leaves them unset; a deck
// value that contradicts config.json is an InputError naming both. No-op without init_from or
// when init_from is an lctrain checkpoint (.h5).
void apply_init_from(Deck& d);

// stage(n) + apply_init_from + resolve_deck.
Deck resolve_run_stage(const Deck& base, int n);

}  // namespace lct
