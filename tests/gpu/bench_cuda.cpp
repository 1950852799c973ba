// Benchmarks of the cuda backend (filled in below).
int main() { return 0; }
