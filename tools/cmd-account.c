/* cmd-account.c: being written */
