/* model_cli.h - the subcommands of stepstone-model (one file each). */
#ifndef STEPSTONE_MODEL_CLI_H
#define STEPSTONE_MODEL_CLI_H

/* `stepstone-model init ...` (init.c): argv[0] is "init". */
int model_init_main(int argc, char **argv);

#endif
