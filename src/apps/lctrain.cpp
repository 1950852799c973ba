// lctrain: long-context training of Llama-family models. See README.md and docs/.
#include "train/cli.h"

int main(int argc, char** argv) { return lct::lctrain_main(argc, argv); }
