/* STUB: to be written. */
int
main (int argc, char **argv)
{
  return 1;
}
