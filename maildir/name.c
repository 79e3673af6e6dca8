/* name.c: being written */
