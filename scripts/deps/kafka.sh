#!/usr/bin/env bash
# Installs what the Kafka tests need: an Apache Kafka broker (jars resolved
# from Maven Central into the test cache) and kcat as an independent client.
# Idempotent: a complete install is detected and left alone.
set -euo pipefail

KAFKA_VERSION="${SSPR_KAFKA_VERSION:-4.1.2}"
CACHE="${SSPR_TEST_CACHE:-$HOME/.cache/sspr-exporter-test}"
DEST="$CACHE/kafka-$KAFKA_VERSION"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
# A JDK, not a JRE: the tests run small single-file Java programs against
# kafka-clients, which needs the compiler module.
if ! command -v java >/dev/null 2>&1 || ! java --list-modules 2>/dev/null | grep -q '^jdk.compiler'; then
	need_apt+=(openjdk-17-jdk-headless)
fi
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ "${#need_apt[@]}" -gt 0 ]; then
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

if [ -f "$DEST/.complete" ]; then
	echo "kafka $KAFKA_VERSION already installed in $DEST"
	exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$DEST"
rm -rf "$DEST/libs"

# A throwaway project whose only purpose is to let Maven resolve the broker's
# full runtime classpath, including the log4j2 backend the broker logs with.
cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sspr-exporter.test</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>2.0.16</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
POM

mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
	-DincludeScope=runtime -DoutputDirectory="$DEST/libs"

ls "$DEST/libs"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
echo "$KAFKA_VERSION" >"$DEST/.complete"
echo "kafka $KAFKA_VERSION installed in $DEST"
