// plan_under_test DECK [--world-size N] [--ranks-per-node R] [--stage S] [--section.key=value ...]:
// train/plan.h's run_plan without the lctrain CLI around it (tests; docs/parallel.md's figures).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "deck/deck.h"
#include "train/plan.h"

int main(int argc, char** argv) {
  try {
    std::string deck;
    std::vector<std::string> overrides;
    int world = 0, rpn = 0, stage = 0;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--world-size" && i + 1 < argc) world = std::atoi(argv[++i]);
      else if (a == "--ranks-per-node" && i + 1 < argc) rpn = std::atoi(argv[++i]);
      else if (a == "--stage" && i + 1 < argc) stage = std::atoi(argv[++i]);
      else if (a.rfind("--", 0) == 0) overrides.push_back(a);
      else deck = a;
    }
    return lct::run_plan(lct::Deck::from_file(deck, overrides), world, rpn, std::cout, stage);
  } catch (const lct::Error& e) {
    std::fprintf(stderr, "plan error: %s\n", e.what());
    return e.code();
  }
}
