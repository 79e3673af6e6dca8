/* compress.c: being written */
