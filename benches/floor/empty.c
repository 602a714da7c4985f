/* The start floor of a statically linked glibc program: everything glibc does before main. */
int main(void) { return 0; }
