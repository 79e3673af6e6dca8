/* io.c: being written */
