/* out.c: being written */
