// A lookalike of org.crac.Core (see Resource.java): the global context
// functions register their resources with; the runtime client
// (SnapFunction's main) runs its hooks around the snapshot.
package org.crac;

public final class Core {
    private static final Context<Resource> GLOBAL = new Context.Global();

    private Core() {}

    public static Context<Resource> getGlobalContext() {
        return GLOBAL;
    }
}
