/* header.c: being written */
