#include "eval/ruler_words.h"

namespace lct {

namespace {

std::vector<std::string> split(const char* text) {
  std::vector<std::string> out;
  std::string w;
  for (const char* p = text;; ++p) {
    if (*p == ' ' || *p == '\0') {
      if (!w.empty()) out.push_back(w);
      w.clear();
      if (*p == '\0') break;
    } else {
      w += *p;
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& ruler_adjectives() {
  static const std::vector<std::string> w = split(
      "able acid angry autumn awake bad bitter black blue boiling bright broken brown busy calm careful cheap "
      "clean clear cold cool cruel damp dark dead dear deep dry early easy elastic electric empty equal false "
      "fancy fat feeble fierce flat foolish free fresh full gentle glad golden good gray great green happy hard "
      "healthy heavy high hollow hot huge kind large late lazy light little living long loose loud low mild "
      "modern narrow natural new nice noisy odd old open orange pale plain polite poor private proud purple "
      "quick quiet rapid rare raw red rich right rough round royal sad safe sharp short shy silent silver simple "
      "slow small smooth soft solid sour spare square steep sticky stiff still strange strong sudden sweet tall "
      "thick thin tidy tight tiny tired true ugly vast violet warm weak wet white wide wild wise wooden young");
  return w;
}

const std::vector<std::string>& ruler_nouns() {
  static const std::vector<std::string> w = split(
      "account actor airport album anchor animal answer apple arch army arrow artist baby badge bakery balloon "
      "band bank barn basket beach bean bear bed bell bicycle bird blanket boat bone book bottle box branch "
      "bread bridge brother brush bucket button cabin cake camera camp candle canyon car card carpet castle cat "
      "cattle cave chain chair cheese cherry chest child church circle city cliff clock cloud coat coin comb "
      "corn cottage cousin cow crayon crowd crown cup curtain desk diamond dinner doctor dog door dragon drawer "
      "dress drum eagle engine farm feather fence field finger fish flag flower fog forest fork fountain fox "
      "frog garden gate ghost giant glass glove goat guitar hammer harbor hat hill horse house island jacket "
      "jewel kettle key kitchen kite ladder lake lamp lemon letter library lion machine map market meadow "
      "mirror monkey moon mountain needle nest ocean office orchard owl painter palace panda parrot pencil "
      "piano pigeon pillow planet plate pocket pond potato queen rabbit river robot rocket roof sailor school "
      "shark sheep shell ship shoe singer snake soldier spoon star station stone storm street sugar table "
      "teacher tiger tower town train tree truck tunnel turtle valley village violin wagon whale window wolf");
  return w;
}

const std::vector<std::string>& ruler_verbs() {
  static const std::vector<std::string> w = split(
      "accept admire allow arrive bake bathe borrow bounce breathe build calculate carry change chase cheer "
      "climb collect cook count crawl dance decide deliver describe divide dream drift enjoy explain explore "
      "fetch float follow gather glow grab guard guess hammer hurry imagine invent juggle kneel knit laugh "
      "listen march measure melt mix notice obey offer paint pause plant polish pour pretend promise pull "
      "push question reach relax repair reply rescue rinse roll scatter search shiver sketch skip smile sneeze "
      "sparkle spill sprint squeeze stitch stretch swim tickle travel trust twist unlock wander wave whisper "
      "whistle wiggle wink wobble wonder yawn");
  return w;
}

}  // namespace lct
