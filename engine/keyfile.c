/* keyfile.c: being written */
