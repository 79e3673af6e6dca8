/* deliver.c: being written */
