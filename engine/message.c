/* message.c: being written */
