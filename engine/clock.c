/* clock.c: being written */
