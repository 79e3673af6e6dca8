/* envelope.c: being written */
