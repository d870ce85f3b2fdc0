// A lookalike of org.crac.Context (see Resource.java): a Resource that
// others register with, and that notifies them in registration order before
// the checkpoint and in reverse order after the restore.
package org.crac;

import java.util.ArrayList;
import java.util.List;

public abstract class Context<R extends Resource> implements Resource {
    public abstract void register(R resource);

    /** The global context's implementation (org.crac's is the JDK's or a no-op). */
    static final class Global extends Context<Resource> {
        private final List<Resource> resources = new ArrayList<>();

        @Override
        public synchronized void register(Resource resource) {
            resources.add(resource);
        }

        @Override
        public synchronized void beforeCheckpoint(Context<? extends Resource> context) throws Exception {
            for (int i = resources.size() - 1; i >= 0; i--) {
                resources.get(i).beforeCheckpoint(this);
            }
        }

        @Override
        public synchronized void afterRestore(Context<? extends Resource> context) throws Exception {
            for (Resource r : resources) {
                r.afterRestore(this);
            }
        }
    }
}
