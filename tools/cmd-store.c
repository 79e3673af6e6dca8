/* cmd-store.c: being written */
