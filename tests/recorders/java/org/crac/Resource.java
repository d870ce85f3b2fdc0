// A lookalike of org.crac.Resource (the CRaC API, org.crac:crac on Maven
// Central), which the Lambda Java runtime calls around a SnapStart snapshot.
// Only Debian's packages are reachable here, so the recorded function
// compiles against this copy of its shape (the same package, names and
// signatures); see tests/recorders/MODES.md.
package org.crac;

public interface Resource {
    void beforeCheckpoint(Context<? extends Resource> context) throws Exception;

    void afterRestore(Context<? extends Resource> context) throws Exception;
}
