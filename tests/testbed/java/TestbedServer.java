import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * Runs an embedded Neo4j DBMS (community edition) with Bolt enabled until the JVM is told to stop.
 *
 * <p>Usage: {@code java -cp <neo4j jars>:<this> TestbedServer <home dir> <neo4j.conf>}. The DBMS
 * configuration is read from the given properties file (written by the Python package
 * {@code testbed}, one dialect per Neo4j line). The password for the user {@code neo4j} is taken
 * from the environment variable {@code NEO4J_TESTBED_PASSWORD} and set in-process on the
 * {@code system} database (not with {@code NEO4J_TESTBED_RESTART=1}: a store that already
 * exists keeps the password of its first start). The line {@code TESTBED READY} is printed once
 * everything is up; SIGTERM shuts the DBMS down cleanly.
 *
 * <p>Only reflection is used against the Neo4j API, so one class file (compiled with
 * {@code --release 11}) serves 4.4, 5.x and calendar-versioned releases alike.
 */
public final class TestbedServer {
    private TestbedServer() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: TestbedServer <home dir> <neo4j.conf>");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Path conf = Paths.get(args[1]).toAbsolutePath();
        String password = System.getenv("NEO4J_TESTBED_PASSWORD");
        if (password == null || password.length() < 8) {
            System.err.println("TESTBED FAILED: NEO4J_TESTBED_PASSWORD must hold at least 8 characters");
            System.exit(2);
        }

        // NEO4J_TESTBED_RESTART=1: an existing store (after a crash or a stop) is opened again
        boolean restart = "1".equals(System.getenv("NEO4J_TESTBED_RESTART"));

        long t0 = System.nanoTime();
        Object service;
        try {
            Class<?> builderClass = Class.forName("org.neo4j.dbms.api.DatabaseManagementServiceBuilder");
            Object builder = builderClass.getConstructor(Path.class).newInstance(home);
            builder = builderClass.getMethod("loadPropertiesFromFile", Path.class).invoke(builder, conf);
            service = builder.getClass().getMethod("build").invoke(builder);
        } catch (InvocationTargetException e) {
            System.err.println("TESTBED FAILED: the DBMS did not start");
            e.getCause().printStackTrace();
            System.exit(1);
            return;
        }

        System.out.println("TESTBED DBMS STARTED in " + (System.nanoTime() - t0) / 1_000_000 + " ms");
        System.out.flush();
        Class<?> serviceClass = Class.forName("org.neo4j.dbms.api.DatabaseManagementService");
        Method shutdown = serviceClass.getMethod("shutdown");
        final Object dbms = service;
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("TESTBED STOPPING");
            System.out.flush();
            try {
                shutdown.invoke(dbms);
            } catch (Exception e) {
                e.printStackTrace();
            }
            System.out.println("TESTBED STOPPED");
            System.out.flush();
            stopped.countDown();
        }, "testbed-shutdown"));

        if (restart) {
            // the store already holds the user and its password (set on the first start; 4.4 and
            // 5.x even refuse to set the same one again): the test bed's login check tells
            System.out.println("TESTBED password kept (restart)");
        } else {
            try {
                Object system = serviceClass.getMethod("database", String.class).invoke(service, "system");
                Class<?> gdbClass = Class.forName("org.neo4j.graphdb.GraphDatabaseService");
                gdbClass.getMethod("executeTransactionally", String.class, Map.class)
                        .invoke(system, "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED",
                                Map.of("pw", password));
            } catch (InvocationTargetException e) {
                System.err.println("TESTBED FAILED: could not set the password of the user neo4j");
                e.getCause().printStackTrace();
                System.exit(1);
            }
        }

        long ms = (System.nanoTime() - t0) / 1_000_000;
        System.out.println("TESTBED READY in " + ms + " ms (pid " + ProcessHandle.current().pid() + ")");
        System.out.flush();
        stopped.await();
    }
}
