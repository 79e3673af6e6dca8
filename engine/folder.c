/* folder.c: being written */
