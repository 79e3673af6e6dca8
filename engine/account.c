/* account.c: being written */
