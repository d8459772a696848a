package org.moespark.spark;

import org.apache.spark.sql.types.Decimal;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.apache.spark.sql.vectorized.ColumnarMap;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * A read-only view of the rows {@code selection[0..n)} of {@code base}: row {@code i} of the view is row
 * {@code selection[i]} of the base vector. Used to drop skipped rows from a batch without copying the
 * other columns. Does not own {@code base}: {@link #close()} does nothing.
 */
final class SelectedColumnVector extends ColumnVector {
  private final ColumnVector base;
  private final int[] selection;
  private final int rows;
  private SelectedColumnVector[] children;

  SelectedColumnVector(ColumnVector base, int[] selection, int rows) {
    super(base.dataType());
    if (rows < 0 || rows > selection.length) {
      throw new IllegalArgumentException("selection of " + rows + " rows, but only " + selection.length + " indices");
    }
    this.base = base;
    this.selection = selection;
    this.rows = rows;
  }

  /** The vector this is a view of. */
  ColumnVector base() {
    return base;
  }

  /** Row {@code i} of the view is row {@code selection()[i]} of {@link #base()} (for i below the row count). */
  int[] selection() {
    return selection;
  }

  private int at(int rowId) {
    if (rowId < 0 || rowId >= rows) {
      throw new IndexOutOfBoundsException("row " + rowId + " outside [0, " + rows + ")");
    }
    return selection[rowId];
  }

  @Override
  public void close() {}

  @Override
  public boolean hasNull() {
    return numNulls() > 0;
  }

  @Override
  public int numNulls() {
    if (!base.hasNull()) {
      return 0;
    }
    int n = 0;
    for (int i = 0; i < rows; i++) {
      if (base.isNullAt(selection[i])) {
        n++;
      }
    }
    return n;
  }

  @Override
  public boolean isNullAt(int rowId) {
    return base.isNullAt(at(rowId));
  }

  @Override
  public boolean getBoolean(int rowId) {
    return base.getBoolean(at(rowId));
  }

  @Override
  public byte getByte(int rowId) {
    return base.getByte(at(rowId));
  }

  @Override
  public short getShort(int rowId) {
    return base.getShort(at(rowId));
  }

  @Override
  public int getInt(int rowId) {
    return base.getInt(at(rowId));
  }

  @Override
  public long getLong(int rowId) {
    return base.getLong(at(rowId));
  }

  @Override
  public float getFloat(int rowId) {
    return base.getFloat(at(rowId));
  }

  @Override
  public double getDouble(int rowId) {
    return base.getDouble(at(rowId));
  }

  @Override
  public ColumnarArray getArray(int rowId) {
    return base.getArray(at(rowId));
  }

  @Override
  public ColumnarMap getMap(int ordinal) {
    return base.getMap(at(ordinal));
  }

  @Override
  public Decimal getDecimal(int rowId, int precision, int scale) {
    return base.getDecimal(at(rowId), precision, scale);
  }

  @Override
  public UTF8String getUTF8String(int rowId) {
    return base.getUTF8String(at(rowId));
  }

  @Override
  public byte[] getBinary(int rowId) {
    return base.getBinary(at(rowId));
  }

  @Override
  public ColumnVector getChild(int ordinal) {
    if (children == null || ordinal >= children.length) {
      children = java.util.Arrays.copyOf(children == null ? new SelectedColumnVector[0] : children, ordinal + 1);
    }
    if (children[ordinal] == null) {
      children[ordinal] = new SelectedColumnVector(base.getChild(ordinal), selection, rows);
    }
    return children[ordinal];
  }
}
