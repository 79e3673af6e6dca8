/* cmd-mail.c: being written */
