/* version.h - the version every stepstone program reports (--help, the
 * manifests, a feature cache's producer record). Bump it when a program's
 * outputs change for the same inputs, so old outputs are not mistaken for
 * new ones. */
#ifndef STEPSTONE_VERSION_H
#define STEPSTONE_VERSION_H

#define STEPSTONE_VERSION "0.1.0"

#endif
