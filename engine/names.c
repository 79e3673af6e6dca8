/* names.c: being written */
