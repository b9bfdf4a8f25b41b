// Package dockerhost finds the Docker daemon a user means, as the Docker CLI
// does (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH,
// DOCKER_CONTEXT, the current context of DOCKER_CONFIG), and makes clients
// of it over every transport the CLI knows: unix sockets, named pipes, TCP
// with or without TLS, and ssh (through `docker system dial-stdio` on the
// far side).
package dockerhost
